-- AlterTable
ALTER TABLE "ProgrammeEntry" ADD COLUMN     "breaks" TEXT NOT NULL DEFAULT '[]';
